export { default } from '@viommu/eslint-config';
